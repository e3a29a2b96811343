"""What happened and who is here: activity per minute, presence, the
instructor's overview and the admin's status."""
