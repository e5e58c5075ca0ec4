package console

// SessionTokens returns the device id and the tokens the console holds for
// the session of a cookie, so that a test can check that a session ended
// stops them too; ok is false when there is no such session.
func (c *Console) SessionTokens(cookie string) (deviceID, access, refresh string, ok bool) {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	sess := c.sessions.byID[cookie]
	if sess == nil {
		return "", "", "", false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.deviceID, sess.access, sess.refresh, true
}
