"""The node runtime: trio + libp2p adapters around the sans-I/O protocols."""
