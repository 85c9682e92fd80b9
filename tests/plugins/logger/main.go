// Command logger logs its configuration and every request line.
package main

import "hlocaltest/abi"

func main() {}

// The plain upstream ABI version: this module loads on stock Envoy unmodified.
//
//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

type plugin struct{}

func init() { abi.Register(func(uint32) abi.Plugin { return plugin{} }) }

func (plugin) OnConfigure(raw []byte) bool {
	abi.Log(abi.LogInfo, "logger: configured "+string(raw))
	return true
}

func (plugin) NewHttpContext(uint32) abi.HttpContext { return stream{} }

type stream struct{ abi.DefaultHttpContext }

func (stream) OnRequestHeaders(int, bool) abi.Action {
	method, _ := abi.GetHeader(abi.RequestHeaders, ":method")
	path, _ := abi.GetHeader(abi.RequestHeaders, ":path")
	abi.Log(abi.LogInfo, "logger: "+method+" "+path)
	return abi.Continue
}
