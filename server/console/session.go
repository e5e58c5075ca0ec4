package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// session is one signed-in browser. It is a device of its user: actions
// go through the same op path as phones, with its own client_seq.
type session struct {
	id       string
	csrf     string
	user     syncproto.UserInfo
	deviceID string
	access   string
	refresh  string
	expires  time.Time
	lastSeen time.Time
	// seq is the last client_seq this browser's ops used.
	seq uint64
	// listText is the list's free-text search: kept here, never in a
	// URL, so a searched name stays out of links and logs. Guarded by mu.
	listText string
	mu       sync.Mutex
}

// sessions holds the signed-in browsers in memory: a restart signs them
// out, which a desk user shrugs off, and nothing of them reaches the disk.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	idle time.Duration
	now  func() time.Time
	// end signs out, in the store, the device of a session forgotten for
	// being idle: a browser closed without signing out would otherwise
	// count toward its user's devices (store.Options.MaxDevicesPerUser)
	// until its refresh token expired. Called without mu held.
	end func(*session)
}

func newSessions(idle time.Duration, now func() time.Time, end func(*session)) *sessions {
	return &sessions{byID: map[string]*session{}, idle: idle, now: now, end: end}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) add(sess *session) {
	sess.id, sess.csrf, sess.lastSeen = randomToken(), randomToken(), s.now()
	s.mu.Lock()
	s.byID[sess.id] = sess
	s.mu.Unlock()
}

// sweep ends the idle sessions. A sign-in runs it first, so that the
// user's browsers closed without signing out leave room for a new one.
func (s *sessions) sweep() {
	var idle []*session
	s.mu.Lock()
	for id, old := range s.byID {
		if s.now().Sub(old.lastSeen) > s.idle {
			delete(s.byID, id)
			idle = append(idle, old)
		}
	}
	s.mu.Unlock()
	s.ended(idle...)
}

// ended signs out the devices of sessions just forgotten.
func (s *sessions) ended(gone ...*session) {
	if s.end == nil {
		return
	}
	for _, sess := range gone {
		s.end(sess)
	}
}

// get returns a live session and marks it seen; an idle one is ended.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	sess := s.byID[id]
	if sess == nil {
		s.mu.Unlock()
		return nil
	}
	if s.now().Sub(sess.lastSeen) > s.idle {
		delete(s.byID, id)
		s.mu.Unlock()
		s.ended(sess)
		return nil
	}
	sess.lastSeen = s.now()
	s.mu.Unlock()
	return sess
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

// checkCSRF compares a form's token with the session's in constant time.
func (sess *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}
