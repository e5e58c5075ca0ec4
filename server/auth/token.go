package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Limits and defaults of access tokens.
const (
	// DefaultAccessTTL is an access token's lifetime when NewIssuer is given
	// none (PROTOCOL.md section 3).
	DefaultAccessTTL = 15 * time.Minute

	// MaxTokenBytes is the longest token Verify will parse. Ours are about
	// 400 bytes; anything much longer is an attack on the parser.
	MaxTokenBytes = 4096

	// MaxClockSkew is how far `iat` may be ahead of the verifier's clock, for
	// servers whose clocks differ a little. `exp` gets no such grace.
	MaxClockSkew = time.Minute

	// algEdDSA is the only signing algorithm Verify accepts.
	algEdDSA = "EdDSA"
)

// Claims is what an access token says about its bearer. It maps to the JWT
// claims sub (UserID), role, unit, dev (DeviceID), adm (Admin), ses
// (Session), iat (IssuedAt), exp (ExpiresAt) and jti (ID). Times have
// one-second precision.
type Claims struct {
	UserID   string
	Role     string
	Unit     string
	DeviceID string
	Admin    bool
	// Session is the device's sign-in session the token was issued in.
	// The server ends a session (sign-out, a refresh token used twice)
	// by giving the device a new one, which stops the session's access
	// tokens at once instead of when they expire. 0 in a token made
	// before sessions were numbered.
	Session   uint64
	IssuedAt  time.Time
	ExpiresAt time.Time
	ID        string
}

// Actor is the user and device the token speaks for, as ops record them,
// with the session the store checks the device against.
func (c Claims) Actor() syncproto.Actor {
	return syncproto.Actor{UserID: c.UserID, Role: c.Role, Unit: c.Unit, DeviceID: c.DeviceID, Session: c.Session}
}

// Issuer signs and verifies access tokens with a set of Ed25519 keys, one of
// which is active (signs new tokens); the others only verify, so tokens
// outlive a key rotation. An Issuer is safe for concurrent use.
type Issuer struct {
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser

	mu     sync.RWMutex
	keys   map[string]Key
	public map[string]ed25519.PublicKey
	active string
}

// NewIssuer returns an Issuer holding keys, signing with the key whose ID is
// activeKID, making tokens that live ttl (DefaultAccessTTL if ttl <= 0), and
// reading the time from now (time.Now if nil). It fails if a key is
// malformed, two keys share an ID, or activeKID is not among them.
func NewIssuer(keys []Key, activeKID string, ttl time.Duration, now func() time.Time) (*Issuer, error) {
	if ttl <= 0 {
		ttl = DefaultAccessTTL
	}
	if now == nil {
		now = time.Now
	}
	i := &Issuer{
		ttl:    ttl,
		now:    now,
		keys:   make(map[string]Key, len(keys)),
		public: make(map[string]ed25519.PublicKey, len(keys)),
	}
	i.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{algEdDSA}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	for _, k := range keys {
		if _, dup := i.keys[k.ID]; dup {
			return nil, fmt.Errorf("auth: new issuer: two keys have id %q", k.ID)
		}
		if err := i.addLocked(k); err != nil {
			return nil, fmt.Errorf("auth: new issuer: %w", err)
		}
	}
	if _, ok := i.keys[activeKID]; !ok {
		return nil, fmt.Errorf("auth: new issuer: active key %q is not among the %d keys given", activeKID, len(keys))
	}
	i.active = activeKID
	return i, nil
}

// addLocked validates k and adds a private copy of it. The caller holds mu
// (or owns i exclusively).
func (i *Issuer) addLocked(k Key) error {
	if err := k.Validate(); err != nil {
		return err
	}
	k.Private = append(ed25519.PrivateKey(nil), k.Private...)
	i.keys[k.ID] = k
	i.public[k.ID] = k.Public()
	return nil
}

// AddKey adds a key that verifies tokens from now on; it signs only once
// SetActive names it. Adding a key that is already held is a no-op; adding
// another key under a held ID is an error.
func (i *Issuer) AddKey(k Key) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if old, ok := i.keys[k.ID]; ok {
		if old.Private.Equal(k.Private) {
			return nil
		}
		return fmt.Errorf("auth: add key: another key already has id %q", k.ID)
	}
	if err := i.addLocked(k); err != nil {
		return fmt.Errorf("auth: add key: %w", err)
	}
	return nil
}

// SetActive makes the held key kid sign every new token. Tokens signed with
// the previously active key keep verifying if they were issued before now;
// that key is retired from now on.
func (i *Issuer) SetActive(kid string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	k, ok := i.keys[kid]
	if !ok {
		return fmt.Errorf("auth: set active key: no key has id %q", kid)
	}
	if kid == i.active {
		return nil
	}
	if old, ok := i.keys[i.active]; ok && old.Retired.IsZero() {
		old.Retired = i.now().UTC()
		i.keys[i.active] = old
	}
	k.Retired = time.Time{}
	i.keys[kid] = k
	i.active = kid
	return nil
}

// RemoveKey forgets key kid: tokens it signed stop verifying. Remove a key
// only once the TTL has passed since another key became active. Removing
// the active key is an error; removing an unknown one is a no-op.
func (i *Issuer) RemoveKey(kid string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if kid == i.active {
		return fmt.Errorf("auth: remove key: %q is the active key", kid)
	}
	delete(i.keys, kid)
	delete(i.public, kid)
	return nil
}

// Replace makes keys the issuer's whole key set, signing with the key
// activeKID: a node of a cluster follows the key set its store holds after
// another node rotated it. It fails, changing nothing, where NewIssuer
// would.
func (i *Issuer) Replace(keys []Key, activeKID string) error {
	next := &Issuer{keys: make(map[string]Key, len(keys)), public: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		if _, dup := next.keys[k.ID]; dup {
			return fmt.Errorf("auth: replace keys: two keys have id %q", k.ID)
		}
		if err := next.addLocked(k); err != nil {
			return fmt.Errorf("auth: replace keys: %w", err)
		}
	}
	if _, ok := next.keys[activeKID]; !ok {
		return fmt.Errorf("auth: replace keys: active key %q is not among the %d keys given", activeKID, len(keys))
	}
	i.mu.Lock()
	i.keys, i.public, i.active = next.keys, next.public, activeKID
	i.mu.Unlock()
	return nil
}

// ActiveKID returns the ID of the key that signs new tokens.
func (i *Issuer) ActiveKID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.active
}

// TTL returns the lifetime of the tokens the issuer makes.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// tokenClaims is the JWT payload.
type tokenClaims struct {
	Role  string `json:"role"`
	Unit  string `json:"unit"`
	Dev   string `json:"dev"`
	Admin bool   `json:"adm,omitempty"`
	// Session is Claims.Session.
	Session uint64 `json:"ses,omitempty"`
	jwt.RegisteredClaims

	// now is the verifier's clock reading, for the iat check; not encoded.
	now time.Time
}

// Sentinel causes Verify classifies; they never leave the package.
var (
	errNoKID      = errors.New("token header has no kid")
	errUnknownKID = errors.New("token kid names no key")
	errBadClaims  = errors.New("token claims are incomplete")
	errCrit       = errors.New("token header has crit")
)

// Validate is jwt.ClaimsValidator: the checks the library does not make.
func (c *tokenClaims) Validate() error {
	switch {
	case c.Subject == "":
		return fmt.Errorf("%w: no sub", errBadClaims)
	case c.Dev == "":
		return fmt.Errorf("%w: no dev", errBadClaims)
	case c.Unit == "":
		return fmt.Errorf("%w: no unit", errBadClaims)
	case !syncproto.ValidRole(c.Role):
		return fmt.Errorf("%w: role %q", errBadClaims, c.Role)
	case c.ID == "":
		return fmt.Errorf("%w: no jti", errBadClaims)
	case c.IssuedAt == nil:
		return fmt.Errorf("%w: no iat", errBadClaims)
	case c.IssuedAt.After(c.now.Add(MaxClockSkew)):
		return jwt.ErrTokenUsedBeforeIssued
	}
	return nil
}

// Issue signs an access token for c with the active key. It sets IssuedAt to
// now, ExpiresAt to IssuedAt plus the TTL and ID to 16 random bytes in hex,
// whatever c holds there; UserID, DeviceID, Unit and a valid Role are
// required. expiresIn is how long from now the token lives (the TTL less the
// sub-second part of now that iat drops).
func (i *Issuer) Issue(c Claims) (token string, expiresIn time.Duration, err error) {
	switch {
	case c.UserID == "":
		return "", 0, errors.New("auth: issue token: no user id")
	case c.DeviceID == "":
		return "", 0, errors.New("auth: issue token: no device id")
	case c.Unit == "":
		return "", 0, errors.New("auth: issue token: no unit")
	case !syncproto.ValidRole(c.Role):
		return "", 0, fmt.Errorf("auth: issue token: invalid role %q", c.Role)
	}
	jti, err := randomHex(16)
	if err != nil {
		return "", 0, fmt.Errorf("auth: issue token: %w", err)
	}
	now := i.now()
	iat := now.Truncate(time.Second)
	exp := iat.Add(i.ttl)
	tc := tokenClaims{
		Role:    c.Role,
		Unit:    c.Unit,
		Dev:     c.DeviceID,
		Admin:   c.Admin,
		Session: c.Session,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.UserID,
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
	}

	i.mu.RLock()
	key := i.keys[i.active]
	i.mu.RUnlock()

	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tc)
	t.Header["kid"] = key.ID
	token, err = t.SignedString(key.Private)
	if err != nil {
		return "", 0, fmt.Errorf("auth: issue token: sign with key %q: %w", key.ID, err)
	}
	return token, exp.Sub(now), nil
}

// keyFunc finds the public key the token's kid names.
func (i *Issuer) keyFunc(t *jwt.Token) (any, error) {
	// WithValidMethods has vetted alg already; this is belt and braces.
	if t.Method != jwt.SigningMethodEdDSA {
		return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
	}
	// RFC 7515 section 4.1.11: critical extensions we do not understand
	// make the token invalid, and we understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errNoKID
	}
	i.mu.RLock()
	pub, ok := i.public[kid]
	i.mu.RUnlock()
	if !ok {
		return nil, errUnknownKID
	}
	return pub, nil
}

// Verify checks an access token strictly (see the package doc) and returns
// its claims. Errors are *syncproto.Error: token_expired for a token that is
// good but for its age, unauthorized for anything else. Messages never
// contain the token.
func (i *Issuer) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, unauthorized("no access token was given; sign in")
	}
	if len(token) > MaxTokenBytes {
		return Claims{}, unauthorized("the access token is longer than %d bytes; sign in again", MaxTokenBytes)
	}
	tc := tokenClaims{now: i.now()}
	t, err := i.parser.ParseWithClaims(token, &tc, i.keyFunc)
	if err != nil {
		return Claims{}, classify(t, err)
	}
	if !t.Valid {
		return Claims{}, unauthorized("the access token is not valid; sign in again")
	}
	// A token this server made lives the TTL and was signed while its key
	// was active. One that claims a longer life, or a signing time after
	// its key retired, was made by someone holding a copy of the key (an
	// old backup, say): without these checks it would verify until a
	// second rotation deleted the key, however far off its exp.
	if tc.ExpiresAt.Sub(tc.IssuedAt.Time) > i.ttl+MaxClockSkew {
		return Claims{}, syncproto.Errorf(syncproto.CodeTokenExpired, "the access token claims a longer life than this server gives; refresh it")
	}
	kid, _ := t.Header["kid"].(string)
	i.mu.RLock()
	retired := i.keys[kid].Retired
	i.mu.RUnlock()
	if !retired.IsZero() && tc.IssuedAt.After(retired.Add(MaxClockSkew)) {
		return Claims{}, unauthorized("the access token was signed by a retired key; sign in again")
	}
	c := Claims{
		UserID:   tc.Subject,
		Role:     tc.Role,
		Unit:     tc.Unit,
		DeviceID: tc.Dev,
		Admin:    tc.Admin,
		Session:  tc.Session,
		IssuedAt: tc.IssuedAt.UTC(),
		ID:       tc.ID,
	}
	// WithExpirationRequired guarantees exp is present.
	c.ExpiresAt = tc.ExpiresAt.UTC()
	return c, nil
}

// classify turns a parse error into the protocol error a client sees.
func classify(t *jwt.Token, err error) *syncproto.Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthorized("the access token is malformed; sign in again")
	case t == nil || t.Method == nil || t.Method.Alg() != algEdDSA:
		return unauthorized("the access token is not signed with EdDSA; sign in again")
	case errors.Is(err, errNoKID):
		return unauthorized("the access token names no signing key; sign in again")
	case errors.Is(err, errUnknownKID):
		return unauthorized("the access token's signing key is unknown; sign in again")
	case errors.Is(err, errCrit):
		return unauthorized("the access token has critical header extensions this server does not support; sign in again")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized("the access token's signature is invalid; sign in again")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, errBadClaims):
		return unauthorized("the access token's claims are missing or invalid; sign in again")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthorized("the access token is not valid yet; sign in again")
	case errors.Is(err, jwt.ErrTokenExpired):
		// Reached only when the signature holds and nothing but the age is
		// wrong: the cases above catch the rest of a joined error.
		return &syncproto.Error{Code: syncproto.CodeTokenExpired, Message: "the access token has expired; refresh it"}
	}
	return unauthorized("the access token is not valid; sign in again")
}

// unauthorized makes a fresh unauthorized error.
func unauthorized(format string, args ...any) *syncproto.Error {
	return syncproto.Errorf(syncproto.CodeUnauthorized, format, args...)
}
