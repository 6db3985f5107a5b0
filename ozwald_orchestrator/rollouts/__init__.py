"""Rolling updates and the disruption budget they share with drains (docs/operations.md).

`strategy` fills in UpdateStrategy's defaults, `budget` says how many instances of a
deployment may be taken down now, `controller` is the rollout state machine (pure: it
reads instances and a Clock, and says what to replace), `book` keeps every deployment's
rollouts and their store records, `replace` carries a replacement out on the fleet.
"""
