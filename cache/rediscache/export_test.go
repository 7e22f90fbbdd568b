package rediscache

// NearLen returns the number of aggregates the near cache of c keeps.
func NearLen(c *Cache) int {
	c.near.mu.RLock()
	defer c.near.mu.RUnlock()
	return len(c.near.masters)
}
