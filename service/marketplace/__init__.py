"""Plugin marketplace: publishers and signing keys, plugins and versions, ratings, installs and moderation."""
