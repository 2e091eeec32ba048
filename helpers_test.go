package netloop_test

import (
	"io"
	"log"
	"net"
	"time"

	"github.com/netloop/netloop"
)

func netloopListenConfig(keepAlive time.Duration, ka net.KeepAliveConfig) *netloop.ListenConfig {
	return &netloop.ListenConfig{KeepAlive: keepAlive, KeepAliveConfig: ka}
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
