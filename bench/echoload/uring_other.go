//go:build !linux

package main

import (
	"errors"
	"time"
)

func runUring(addr string, nconns int, dur, grace time.Duration, msg0 []byte) ([]hist, []int, int, error) {
	return nil, nil, 0, errors.New("-engine uring needs Linux")
}
