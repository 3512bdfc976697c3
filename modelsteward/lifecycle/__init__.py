"""Life cycles as code: the engine that moves versions between stages through gates, approvals and actions."""
