package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/httpapi"
)

// protectionFlags are serve's settings for request limits and sign-in
// lockout (docs/SECURITY-OPERATIONS.md says why the defaults are what they
// are).
type protectionFlags struct {
	deviceRate, ipRate             *float64
	deviceBurst, ipBurst           *int
	trustedProxies                 *string
	lockoutThreshold               *int
	lockoutWindow, lockoutDuration *time.Duration
}

func addProtectionFlags(fs *flag.FlagSet) *protectionFlags {
	return &protectionFlags{
		deviceRate:       fs.Float64("device-rate", httpapi.DefaultDeviceRate, "requests a second a device may make once its burst is spent; negative turns the limit off"),
		deviceBurst:      fs.Int("device-burst", httpapi.DefaultDeviceBurst, "requests a device may make at once"),
		ipRate:           fs.Float64("ip-rate", httpapi.DefaultIPRate, "sign-ins and token refreshes a second per client address once its burst is spent; negative turns the limit off"),
		ipBurst:          fs.Int("ip-burst", httpapi.DefaultIPBurst, "sign-ins and token refreshes a client address may make at once"),
		trustedProxies:   fs.String("trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client"),
		lockoutThreshold: fs.Int("lockout-threshold", app.DefaultLockoutThreshold, "failed sign-ins of one username within --lockout-window that lock it; negative turns the lockout off"),
		lockoutWindow:    fs.Duration("lockout-window", app.DefaultLockoutWindow, "window in which failed sign-ins of a username are counted"),
		lockoutDuration:  fs.Duration("lockout-duration", app.DefaultLockoutDuration, "first lockout of a username; each further one in a row doubles, up to 4h"),
	}
}

// apply validates the flags and sets them on the configurations.
func (p *protectionFlags) apply(acfg *app.Config, hcfg *httpapi.Config) error {
	if *p.deviceBurst < 1 || *p.ipBurst < 1 {
		return errors.New("--device-burst and --ip-burst must be at least 1")
	}
	if *p.deviceRate == 0 || *p.ipRate == 0 {
		return errors.New("--device-rate and --ip-rate must be positive, or negative to turn the limit off")
	}
	if *p.lockoutThreshold == 0 || *p.lockoutWindow <= 0 || *p.lockoutDuration <= 0 {
		return errors.New("--lockout-threshold, --lockout-window and --lockout-duration must be positive")
	}
	trusted, err := httpapi.ParseTrustedProxies(*p.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	hcfg.RateLimit = httpapi.RateLimit{
		DeviceRate: *p.deviceRate, DeviceBurst: *p.deviceBurst,
		IPRate: *p.ipRate, IPBurst: *p.ipBurst,
		TrustedProxies: trusted,
	}
	acfg.Lockout = app.Lockout{Threshold: *p.lockoutThreshold, Window: *p.lockoutWindow, Duration: *p.lockoutDuration}
	return nil
}
