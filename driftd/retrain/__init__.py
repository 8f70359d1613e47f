"""Retraining: snapshots, trainers, tuning, champion/challenger evaluation, job queue."""
