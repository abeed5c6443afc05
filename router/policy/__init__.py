"""The policy owners' tools: `rules check` (lint), `rules test` (casebook), `rules diff` (ruleset_diff),
`rules matrix`, `rules schema`/`docs` (schema), explain's text (explain_text) and recorded clicks (replay).

May import `router.decision` and `router.serve` (to load rules exactly as the server does); never the CLI.
"""
