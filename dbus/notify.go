package dbus

import (
	"context"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// The freedesktop notification service.
const (
	notifyName      = "org.freedesktop.Notifications"
	notifyPath      = godbus.ObjectPath("/org/freedesktop/Notifications")
	notifyMethod    = notifyName + ".Notify"
	notifyAppName   = "Karapace"
	notifyExpireMS  = int32(5000)
	notifyCallLimit = 5 * time.Second
)

// notify sends a desktop notification in the background. It is best effort: a
// missing or slow notification server is logged at debug level and never fails or
// delays the call that triggered it. The send keeps the service busy, so an idle exit
// never cuts it off.
func (s *Service) notify(summary, body string) {
	end := s.idle.begin()
	go func() {
		defer end()
		ctx, cancel := context.WithTimeout(context.Background(), notifyCallLimit)
		defer cancel()
		obj := s.conn.Object(notifyName, notifyPath)
		call := obj.CallWithContext(ctx, notifyMethod, 0,
			notifyAppName, uint32(0), "", summary, body, []string{}, map[string]godbus.Variant{}, notifyExpireMS)
		if call.Err != nil {
			s.log.Debug("desktop notification not sent", "summary", summary, "err", call.Err)
		}
	}()
}
