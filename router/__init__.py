"""adlink-router: decides, per click, how a tap on a Taobao link reaches the item."""

__version__ = "0.1.0"
