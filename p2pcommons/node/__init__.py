"""The node runtime: trio + libp2p adapters around the sans-I/O protocols.

Import-light on purpose: importing this package (or :mod:`.notify`, :mod:`.invite`,
:mod:`.peers`, :mod:`.lock`) never imports libp2p or trio; only :mod:`.daemon`,
:mod:`.session` and :mod:`.oneshot` do.

For other parts of the project:

* ``p2pcommons.node.notify.notify_daemon(home)`` — call after any local write (CLI
  ``contribute``, ``review``…): the running daemon announces the new heads to its peers at
  once.  Returns immediately (False) when no daemon runs; never raises.
* ``p2pcommons.node.notify.request(home, {"cmd": ...})`` — the control-socket client
  (``status``, ``sync``, ``connect``, ``stop``, ``ping``, ``notify``).
* ``p2pcommons.cli.network.join_via_invite(code, home, as_json, name="")`` — what
  ``p2pc join p2pc1…`` runs.

Modules: :mod:`.daemon` (the :class:`~.daemon.Node`), :mod:`.session` (one sync session
over a stream), :mod:`.replica` (summaries and send plans from the store), :mod:`.memory`
(a session between two stores in memory, for tests), :mod:`.oneshot` (``p2pc sync``
without a daemon), :mod:`.invite` (invite codes), :mod:`.peers` (the peer book),
:mod:`.lock` (one daemon per home), :mod:`.derived` (the optional state fold).
"""
