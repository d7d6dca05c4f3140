"""Hardware seams of the post: buttons, lights, buzzer, thermometers and camera.

Nothing here knows about events, storage or MQTT; every real driver imports its
hardware library lazily so that the package imports on a laptop.
"""
