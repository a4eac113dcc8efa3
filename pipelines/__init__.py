"""Stage transforms and runners: bronze, silver, quality, gold, train, score. Never imports prefect."""
