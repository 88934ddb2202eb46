import Testing
import Supervisor
