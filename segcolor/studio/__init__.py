"""The routing studio (``segcolor serve``): a local web app to colorize photos, see which expert
colored which region, and correct the routing by hand.

``session`` holds a photo's cached analysis (no web dependencies); ``app`` serves it with
FastAPI, an optional extra: ``pip install -e ".[studio]"``.
"""
