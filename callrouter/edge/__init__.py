"""The Kamailio SIP edge: the only public SIP socket, in front of the worker pool.

- ``kamailio_cfg``: renders kamailio.cfg and the dispatcher list from the settings (pure).
- ``process``: writes them, checks them with ``kamailio -c``, runs Kamailio as a supervised
  child (restart with back-off, its log into ours) and stops it at shutdown.
"""
