// Package mobile is the fieldsync SDK for Android and iOS apps: a facade
// over client-sdk that uses only types gomobile can bind (strings, bools,
// int/int64, float64, []byte, error, pointers to the structs here, and the
// Listener interface). Lists are iterator types (Len, Get); times are Unix
// milliseconds; id lists are comma-separated strings.
//
// # Building
//
//	gomobile bind -target=android -javapkg=cn.example.fieldsync -o fieldsync.aar ./client-sdk/mobile
//	gomobile bind -target=ios -prefix=FS -o Fieldsync.xcframework ./client-sdk/mobile
//
// `make test` runs gobind (Java and Objective-C, no SDK or Xcode needed) on
// this package, so a change that cannot be bound fails the build.
//
// # Android (Kotlin)
//
//	// Once per install: 32 random bytes, kept in the Android Keystore
//	// (e.g. wrapped by a Keystore AES key, or EncryptedSharedPreferences).
//	val cfg = Config().apply {
//	    serverURL = "https://fieldsync.example"
//	    deviceName = Build.MODEL
//	    platform = "android " + Build.VERSION.RELEASE
//	    key = keyFromKeystore()
//	}
//	val client = Mobile.newClient(context.filesDir.resolve("fieldsync").path, cfg)
//	client.setListener(object : Listener {
//	    override fun onChange(kind: String, ids: String) = runOnUiThread { refresh(kind, ids) }
//	    override fun onProgress(phase: String, pushed: Long, toPush: Long, pulled: Long, remaining: Long) =
//	        runOnUiThread { progress.update(phase, pulled, pulled + remaining) }
//	})
//	// Off the UI thread (a coroutine on Dispatchers.IO):
//	if (client.currentUser() == null) client.login(username, password)
//	client.sync()
//	val list = client.warnings(Filter().apply { status = "assigned,in_progress"; overdue = 0 })
//	for (i in 0 until list.len()) show(list.get(i))
//	val a = AttemptInput().apply { method = "visit"; outcome = "dissuaded"; reached = true; notes = "..." }
//	a.addPhoto(photoFile.path)
//	client.recordAttempt(warningId, a) // returns at once, works offline
//	try { client.sync() } catch (e: Exception) {
//	    when (Mobile.errorCode(e)) {
//	        Mobile.CodeNotLoggedIn -> showLogin()
//	        Mobile.CodeDeviceRevoked -> showRevoked()
//	        else -> if (Mobile.retryable(e)) later() else showError(Mobile.errorMessage(e))
//	    }
//	}
//
// # iOS (Swift)
//
//	let cfg = MobileConfig()
//	cfg.serverURL = "https://fieldsync.example"
//	cfg.key = keyFromKeychain() // 32 bytes, kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
//	var err: NSError?
//	let client = MobileNewClient(appSupportDir, cfg, &err)
//	try client?.sync() // off the main queue
//	// Errors arrive as NSError: MobileErrorCode(error) gives the code.
//
// Objective-C and Swift see a struct field named ID as `id_` (id is a
// keyword there).
//
// # Behaviour
//
// Writes (RecordAttempt, Review, Assign, Dispatch, Escalate,
// AnswerEscalation) are stored at once and never wait for the network;
// each is an op whose State (pending, sent, applied, rejected) the person
// can see. A return needs a comment, an escalation its reason and an
// answer its text, else the write fails at once with invalid_request.
// Warning.ReturnComment says why a lead returned the work, and
// LastEscalation gives a request for help with the county's answer. Sync pushes them in order,
// then pulls the changes in the user's scope, retrying transient failures
// with backoff. An op the server refuses is kept in Rejected with the
// reason until dismissed, and never blocks the ones after it.
//
// Every error's message starts with a code ("forbidden: ..."): use
// ErrorCode, ErrorMessage and Retryable, which work on the error Java or
// Swift hands back.
//
// Each Client has a context that Close cancels; Login, Logout and Sync each
// run under a time limit (Sync: Config.SyncTimeoutSeconds, 10 minutes by
// default), so no call blocks forever.
//
// # On 2G links
//
// Every timeout and interval is in Config, with defaults chosen for links
// of 50-64 kbit/s with 800-1500 ms round trips that drop every few seconds.
// A request is given up only when no byte moves for StallTimeoutSeconds; a
// slow transfer that keeps moving is never cut. Pages of changes are sized
// to the link, and every page applied stays: a sync cut short goes on from
// there. A sync sends ops first, then pulls, then uploads photos, so a new
// warning never waits behind megabytes of photos; photos resume after a
// cut from the last byte the server holds, and Status counts the ones
// still waiting (PhotosPending, PhotosFailed, PhotoError). A county or
// city lead's phone syncs warnings as summaries (Warning.Summary: attempts
// without notes, places and photos, half the bytes); call FetchWarning
// when the lead opens one to bring it whole (Config.PullDetail changes
// this).
//
// Two calls tell the SDK what the platform knows: NetworkAvailable when
// the network comes back (Android ConnectivityManager.NetworkCallback
// onAvailable, iOS NWPathMonitor), so work made offline leaves at once
// instead of after the backoff; SetForeground(true/false) as the app comes
// on screen or leaves it, so a phone on screen waits for new warnings by
// long poll (seen within seconds) and one in the background syncs only
// every StartBackgroundSync interval.
package mobile
