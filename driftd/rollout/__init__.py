"""Rollout: canary state machine, sequential SLO analysis, promote or roll back."""
