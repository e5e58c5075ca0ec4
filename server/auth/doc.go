// Package auth is the server's credential logic: access tokens, password
// hashes and refresh tokens (PROTOCOL.md section 3). It is pure logic. It
// opens no files and serves no HTTP: the store persists signing keys, user
// password hashes and the SHA-256 of refresh tokens, and the HTTP layer calls
// this package to make and check them.
//
// # Access tokens
//
// An access token is a JWT signed with EdDSA (Ed25519) by an [Issuer]. Its
// header names the signing key in `kid`; its claims are `sub` (user id),
// `role`, `unit`, `dev` (device id), `adm` (admin, an extension, present only
// when true), `ses` (the device's session number, an extension: the store
// refuses a token whose session has ended), `iat`, `exp` and `jti`.
// [Issuer.Verify] is strict on purpose: a token is accepted only if every
// one of these holds.
//
//   - it is at most [MaxTokenBytes] long (checked before any parsing);
//   - it is three canonical base64url segments without padding;
//   - `alg` is exactly "EdDSA" (no "none", no HMAC, no RSA, so a public
//     key can never be used as an HMAC secret);
//   - `kid` is a string naming a key the issuer holds;
//   - the signature verifies with that key;
//   - `exp` is present and after now, `iat` is present and not more than
//     [MaxClockSkew] ahead of now, `nbf` (if any) is not after now;
//   - `sub`, `dev`, `role`, `unit` and `jti` are present and `role` is one
//     of the protocol's four roles.
//
// Every failure is a *syncproto.Error: an expired but otherwise good token is
// token_expired (the client refreshes and retries), anything else is
// unauthorized. Messages never repeat the token.
//
// Keys rotate without logging anybody out: [Issuer.AddKey] a new key,
// [Issuer.SetActive] it, and tokens signed with older keys keep verifying
// until they expire; [Issuer.RemoveKey] then retires the old key. An Issuer
// is safe for concurrent use; its clock is injected so tests can move time.
//
// # Passwords
//
// [HashPassword] makes an argon2id hash in the PHC string format
// `$argon2id$v=19$m=19456,t=2,p=1$salt$hash` (OWASP's minimum, about 20-40
// ms and 19 MiB on a small server). [CheckPassword] compares in constant
// time, also accepts bcrypt hashes (the protocol allows both), and answers
// false, never panics, for a malformed or absurdly expensive hash. A login
// for an unknown username calls [DummyCheck], which costs what a wrong
// password costs, so response time does not reveal which usernames exist.
// [NeedsRehash] tells the login path when to upgrade a stored hash.
//
// # Refresh tokens
//
// [NewRefreshToken] makes 32 random bytes, base64url-encoded, and returns
// them with their SHA-256. The store keeps only the hash, so a copy of the
// database lets nobody refresh; [HashRefreshToken] hashes a presented token
// for the look-up. Rotation, reuse detection and the grace for a retried
// refresh whose answer was lost are the store's job.
package auth
