// Command badimport is a trivial plugin that also imports a Higress-only host function,
// so stock Envoy must refuse to load it.
package main

import (
	"unsafe"

	"hlocaltest/abi"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_100
func abiVersion() {}

// Signature as in higress-group/proxy-wasm-go-sdk: cluster, username, password, timeout.
//
//go:wasmimport env proxy_redis_init
func proxyRedisInit(upstream unsafe.Pointer, upstreamSize uint32, username unsafe.Pointer, usernameSize uint32,
	password unsafe.Pointer, passwordSize uint32, timeoutMs uint32) uint32

type plugin struct{}

func init() { abi.Register(func(uint32) abi.Plugin { return plugin{} }) }

func (plugin) OnConfigure(raw []byte) bool {
	// Reachable (so the linker keeps the import) but only taken on request.
	if string(raw) == "redis" {
		cluster := "outbound|6379||redis.static"
		proxyRedisInit(unsafe.Pointer(unsafe.StringData(cluster)), uint32(len(cluster)), nil, 0, nil, 0, 1000)
	}
	return true
}

func (plugin) NewHttpContext(uint32) abi.HttpContext { return abi.DefaultHttpContext{} }
