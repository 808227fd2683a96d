"""SIP legs: the worker process that owns pjsua2, and the engine-side pool that drives it.

Only the ``worker*`` modules import pjsua2; ``protocol``, ``pool``, ``prompts`` and
``worker_config`` do not, so the engine never loads it.

- ``protocol``: frozen dataclasses for commands (Answer, Reject, Play, StopPlay, Dial, Hangup,
  Bridge, Ping, Shutdown) and events (Ready, Incoming, Ringing, Answered, Failed, HungUp, Digit,
  PlayDone, MediaTimeout, LegClosed, Slots, Refused, Pong, Log, CommandError, WorkerDied), and a
  JSON-lines codec.
- ``pool``: ``WorkerPool`` starts N worker processes, routes commands by leg, merges events,
  counts free slots and restarts a dead worker after reporting its legs lost.
- ``worker``: ``python -m callrouter.sip.worker --listen HOST:PORT --public HOST
  --rtp-port-min N --rtp-port-max M``; one pjsua2 Endpoint, at most PJSUA_MAX_CALLS legs (4 in
  the published wheels).
- ``prompts``: ``PromptCache`` turns prompt text (espeak-ng) or a recorded file (sox) into
  8 kHz mono 16-bit WAVs, cached by content hash.

DTMF: RFC 4733 and SIP INFO (``application/dtmf-relay`` via pjsua, plain ``application/dtmf``
answered by the worker itself). When we make the offer, pjsua numbers telephone-event 121; the
worker rewrites its own offer in ``onCallSdpCreated`` to 101, the number most peers (and
sipp's recorded pcaps) use, so consultants' digits are not dropped as "bad RTP pt".
"""
