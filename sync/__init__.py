"""Store-and-forward sync over MQTT: the Pi's outbox and worker, and the district receiver.

`sync` knows MQTT and nothing of GPIO. The Pi side reads `edge`'s store and moves its
watermark only on the district's acknowledgement; the district side stores batches in SQLite.
"""
