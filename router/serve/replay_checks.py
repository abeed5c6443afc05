"""How a signed ad click's ids were checked for replays: written on its click line (`replay_check`), counted in
`adlink_ad_click_replay_checks_total`, and shown by the readout.

The check fails open: a click is never held up or refused because the fleet's store can't answer. So a
click id first used on another router can pass while the store is slow or down, or after it restarted and
forgot. Those clicks are not hidden: each says how far its check went.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ReplayCheck"]


class ReplayCheck(StrEnum):
    # The shared store answered, and has remembered click ids for the whole window this one is kept.
    FLEET = "fleet"
    # No shared store configured: this process's own memory, whole for one process (not across workers or nodes).
    PROCESS = "process"
    # A shared store is configured but did not answer in time (or is resting after failures): this process's
    # own memory only, so a first use on another router was not seen.
    LOCAL = "local"
    # The store answered, but it started (empty) less than this click id's window ago: a first use before its
    # start was forgotten.
    RESTARTED = "restarted"
