"""The heart of Posko: events, screening, the crash-safe store and the station.

`edge` ties the hardware seams in `sensors` to the event log; `web` and `sync` read
the store and call the station.
"""

__version__ = "0.1.0"
