"""The robot lab: robot backends, the safety layer and the episode recorder behind the course's robot contract."""
