import Testing
import TenantGateway
