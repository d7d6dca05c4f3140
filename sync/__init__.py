"""Store-and-forward sync over MQTT: the protocol (codec, topics, messages, batches) and the
Pi's side of it (outbox, watermark, worker, session).

`sync` knows MQTT and nothing of GPIO. The Pi moves its watermark only on the district's
acknowledgement; the district's side of the protocol lives in `district`.
"""
