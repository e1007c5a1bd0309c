"""lbcloud: the evaluation backend of closed-loop driving leaderboards."""

__version__ = "0.1.0"
