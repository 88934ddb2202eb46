import Supervisor
print("rosetta")
