"""SimCity's fault layer: drive a Toxiproxy server and describe faults as profiles.

`toxics.catalog` (the toxic types, attributes and defaults) and `toxics.server` (the Toxiproxy
stand-in) are submodules imported by name; this package re-exports the controller and profile API.
"""

from toxics.control import (
    Effect,
    FaultConfigError,
    Partition,
    ProxyState,
    Toxic,
    ToxiproxyAPIError,
    ToxiproxyController,
)
from toxics.profiles import Fault, FaultProfile, ProfileError, list_profiles, load_profile

__all__ = [
    "Effect",
    "Fault",
    "FaultConfigError",
    "FaultProfile",
    "Partition",
    "ProfileError",
    "ProxyState",
    "Toxic",
    "ToxiproxyAPIError",
    "ToxiproxyController",
    "list_profiles",
    "load_profile",
]
