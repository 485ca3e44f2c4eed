"""config: where the policy file is (`locate`), what it may say (`policy`, with the
bounds on every number in `bounds`), and the units people write (`units`)."""
