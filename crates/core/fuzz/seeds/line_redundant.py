#!/usr/bin/env python3
"""Writes the redundant-line seeds of the `line` fuzz target (corpus/line/redundant-*).

Each seed is a step sequence encoded the way fuzz_targets/line.rs decodes it with arbitrary 1.5
(one byte per small choice: `int_in_range` takes the byte modulo the range, `ratio(1, n)` is true
for a multiple of n, a bool is the low bit). The encoding follows the decoding by hand: after a
change to the target's step decoding, check each seed with `FUZZ_TRACE=1` (the trace and the
`reached:` line show what it does) and adjust. Usage:

    OUT=corpus/line python3 seeds/line_redundant.py
"""
import os, hashlib
PARAMS = ["clean_session","publish_qos","subscribe_qos","keep_alive","ping_interval","reply_timeout",
          "topic_filter","publish_retain","payload_type","max_decompressed_size","time_field_name",
          "client_id","protocol_version","message_expiry_interval"]
class Seed:
    def __init__(self, window=None, params=None):
        self.b = [0]  # redundant
        if window is None: self.b.append(1)
        else: self.b += [0, window]
        params = params or {}
        for p in PARAMS:
            if p in params: self.b += [0, params[p]]
            else: self.b.append(1)
        self.b.append(0)            # no routing trace
        self.b += [0]*5             # every station on
    def step(self, link, n, *rest):
        self.b += [1 if link == 'B' else 0, n] + list(rest)
    def connect(self, link, present=0):
        self.step(link, 0)              # open
        self.step(link, 16)             # CONNECT out
        self.step(link, 2, 0, present)  # CONNACK accepted
        self.step(link, 16)             # SUBSCRIBE out
        self.step(link, 3, 0, 3)        # SUBACK for it, QoS 1
    def gate_pub(self, link, qos=1, repeat=None, both=True, blocked=False):
        # topic gate/1; payload unique (or repeat r1/r2); qos; dup no; (not a redelivery when
        # the link has unconfirmed messages); retain no
        pay = [0, 1] if repeat is None else [0, 0, repeat]
        again = [1] if blocked else []
        self.step(link, 19 if both else 5, 1, 4, *pay, qos, 0, *again, 0)
    def copy(self, link, idx=None, to_other=True):
        # recent publication idx (None: the only one) through the other link, same QoS
        pick = [] if idx is None else [idx]
        self.step(link, 18, 0 if to_other else 3, *pick, 1)
    def ack(self):
        self.step('A', 12, 0)
    def transmit(self, link):
        self.step(link, 16)
    def time(self, which):
        self.step('A', 15, which)
    def close(self, link):
        self.step(link, 1)
    def save(self, name):
        data = bytes(self.b)
        open(os.path.join(os.environ['OUT'], name), 'wb').write(data)
        print(name, len(data))

# 1. the same gated messages through both brokers: shown once, acknowledged on both once confirmed,
#    A lost while one is shown.
s = Seed(window=1)
s.connect('A'); s.connect('B')
s.gate_pub('A'); s.gate_pub('B', blocked=True)
s.transmit('A'); s.transmit('B')
s.ack(); s.transmit('A'); s.transmit('B')
s.close('A'); s.ack(); s.transmit('B')
s.save('redundant-copies-shown-once')

# 2. A rejoins while B carried the line: A's newer message waits behind B's.
s = Seed(window=1)
s.connect('A'); s.connect('B')
s.gate_pub('A')
s.close('A')
s.gate_pub('B', both=False, blocked=True); s.gate_pub('B', both=False, blocked=True)
s.connect('A', present=1)
s.gate_pub('A', both=False, blocked=True)
s.ack(); s.ack()
s.copy('A', idx=4)
s.ack(); s.time(1); s.ack(); s.transmit('A'); s.transmit('B')
s.save('redundant-rejoin-held-ahead')

# 3. a write published on both with B closed before its broker answered; QoS 1 writes.
s = Seed(params={'publish_qos': 1})
s.connect('A'); s.connect('B')
s.step('A', 10, 1, 3, 0)   # OUT_VALUE of 'exact' = "21.5"
s.close('B')
s.transmit('A')
s.step('A', 7, 0, 0)       # PUBACK for it
s.step('A', 10, 1, 3, 0)
s.close('A'); s.close('B')
s.save('redundant-write-one-link-closed')

# 4. a copy after the window is shown again; repeated payloads.
s = Seed(window=0)
s.connect('A'); s.connect('B')
s.gate_pub('A', both=False)
s.time(3)
s.copy('A')
s.gate_pub('A', repeat=0, both=False, blocked=True)
s.gate_pub('A', repeat=0, both=False, blocked=True)
s.copy('A', idx=2); s.ack(); s.ack(); s.ack(); s.ack()
s.save('redundant-window-ends')

# 5. B taken away at run time, with held messages, then given back.
s = Seed(window=2)
s.connect('A'); s.connect('B')
s.gate_pub('A'); s.gate_pub('B', blocked=True)
s.step('A', 14, 0, 0, 1, 2)   # redundant_host = ""
s.connect('A')
s.ack()
s.step('A', 14, 0, 0, 1, 0)   # redundant_host = b
s.connect('A'); s.connect('B')
s.gate_pub('B')
s.ack(); s.ack()
s.save('redundant-b-removed-and-back')

# 6. B taken away while a write waits on both connections (clean sessions: A's share fails).
s = Seed(params={'publish_qos': 1, 'clean_session': 0})
s.connect('A'); s.connect('B')
s.step('A', 10, 1, 3, 0)      # OUT_VALUE of 'exact' = "21.5"
s.step('A', 14, 0, 0, 1, 2)   # redundant_host = ""
s.save('redundant-b-removed-with-a-write')

# 7. B taken away while A's messages wait behind B's after A rejoined.
s = Seed(window=2)
s.connect('A'); s.connect('B')
s.close('A')
s.connect('A', present=1)
s.gate_pub('A', both=False)
s.step('A', 14, 0, 0, 1, 2)   # redundant_host = ""
s.save('redundant-b-removed-while-held-ahead')

# 8. a repeated payload whose first copy's window ended while it was still held: the copy through
#    B matches the second one (the rule), and waits for that one's confirmation.
s = Seed(window=0)
s.connect('A'); s.connect('B')
s.gate_pub('A', both=False)
s.gate_pub('A', repeat=0, both=False, blocked=True)
s.time(1)
s.gate_pub('A', repeat=0, both=False, blocked=True)
s.copy('A', idx=2)
s.ack(); s.ack(); s.transmit('B'); s.ack(); s.transmit('B'); s.transmit('A')
s.save('redundant-repeat-after-window')

# 9. a copy with QoS 0 (B's broker granted less), then a second identical message and its copy.
s = Seed(window=2)
s.connect('A'); s.connect('B')
s.gate_pub('A', both=False)
s.gate_pub('A', repeat=0, both=False, blocked=True)
s.step('A', 18, 0, 1, 0, 0)     # r1 through B with QoS 0
s.gate_pub('A', repeat=0, both=False, blocked=True)
s.copy('A', idx=3)
s.ack(); s.ack(); s.transmit('B'); s.ack(); s.transmit('B'); s.transmit('A')
s.save('redundant-qos0-copy')

# 10. redundant_window shortened at run time: a message after the change keeps the new window.
s = Seed(window=2)               # 30 s
s.connect('A'); s.connect('B')
s.gate_pub('A', both=False)      # g1, window 30 s
s.step('A', 14, 0, 0, 0, 0)      # redundant_window = 0.5
s.connect('A', present=1); s.connect('B', present=1)
s.gate_pub('A', both=False, blocked=True)   # g2, window 0.5 s
s.time(1)
s.copy('A', idx=1)               # g2 through B after its window: shown again
s.ack(); s.ack(); s.ack()
s.save('redundant-window-shortened')

# 11. redundant_window grows after the rule forgot an original still held: a copy goes with the
#     later identical message the rule matched, not the forgotten one.
s = Seed(window=0)               # 0.5 s
s.connect('A'); s.connect('B')
s.gate_pub('A', both=False)                          # g1 shown
s.gate_pub('A', repeat=0, both=False, blocked=True)  # r1 held
s.time(1)
s.gate_pub('A', both=False, blocked=True)            # g2: the rule forgets r1
s.gate_pub('A', repeat=0, both=False, blocked=True)  # r1 again
s.step('A', 14, 0, 0, 0, 2)      # redundant_window = 30
s.connect('A', present=1); s.connect('B', present=1)
s.copy('A', idx=3)               # r1 through B
s.ack(); s.ack(); s.ack(); s.transmit('B'); s.ack(); s.transmit('B')
s.save('redundant-window-grown-after-forgetting')
