"""provisioner: identity lifecycle provisioning for companies that run on Microsoft Entra ID.

The data's path through the packages: intake -> identities -> policies -> planner -> queue ->
targets -> audit and evidence.
"""

__version__ = "0.1.0"
