package netloop_test

import (
	"net"
	"time"

	"github.com/netloop/netloop"
)

func netloopListenConfig(keepAlive time.Duration, ka net.KeepAliveConfig) *netloop.ListenConfig {
	return &netloop.ListenConfig{KeepAlive: keepAlive, KeepAliveConfig: ka}
}
