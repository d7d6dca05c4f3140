"""The district server: the receiver that stores every post's batches exactly once and acks
them, its storage behind one interface, the task force's page and its reports.

It is a different program from the post's (run by the district's IT person on its own
machine); it shares only the protocol in `sync` and the event model in `edge`.
"""
