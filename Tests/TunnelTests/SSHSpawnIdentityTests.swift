import Testing
import Tunnel

@Suite("ssh as the tenant")
struct SSHSpawnIdentityTests {
    @Test("setpriv sets the tenant's groups, gid and uid, then runs ssh with its own arguments unchanged")
    func launchCommandDropsToTheTenant() {
        let identity = SSHSpawnIdentity(userID: 1001, groupID: 1002, supplementaryGroups: [1002, 27], home: "/home/a", userName: "a")
        let command = identity.launchCommand(executable: "/usr/bin/ssh", arguments: ["-N", "-o", "BatchMode=yes", "host"])
        #expect(command.executable.hasSuffix("setpriv"))
        #expect(command.arguments == ["--reuid=1001", "--regid=1002", "--groups=1002,27", "--", "/usr/bin/ssh", "-N", "-o", "BatchMode=yes", "host"])
    }

    @Test("a tenant without supplementary groups gets none of the daemon's")
    func noGroupsClearsThem() {
        let identity = SSHSpawnIdentity(userID: 5, groupID: 6, supplementaryGroups: [], home: "/h", userName: "b")
        let command = identity.launchCommand(executable: "ssh", arguments: [])
        #expect(command.arguments == ["--reuid=5", "--regid=6", "--clear-groups", "--", "ssh"])
    }
}
