"""Jobs: train, evaluate (and later simulate-users, retrain, scheduler)."""
