"""Every Windows constant of the interface, by its Microsoft name.

``from fakewinsock.constants import *`` brings them all (and MAKEWORD, LOBYTE,
HIBYTE), so ported C code reads the same.
"""

from ._constants import *  # noqa: F403
from ._constants import __all__ as __all__
