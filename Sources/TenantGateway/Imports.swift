import CCurl
import NIOCore
import Yams
import Logging
