"""p2pcommons: a peer-to-peer commons replication daemon.

The core (this package's top-level modules) does no network I/O; the node runtime and the
CLI compose it.  See DESIGN.md and ``protocols/`` for the formats.
"""

__version__ = "0.1.0"
