import Supervisor
print("rosettad")
