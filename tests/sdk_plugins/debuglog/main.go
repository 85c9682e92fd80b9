// debuglog: logs a debug line only when the gateway's log level (Higress foreign function
// get_log_level) lets debug through, and tells the upstream which level it saw.
package main

import (
	"encoding/binary"
	"strconv"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("debuglog", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct{}

func parseConfig(json gjson.Result, c *config) error { return nil }

const (
	levelTrace = 0
	levelDebug = 1
)

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	seen := "unavailable"
	value, err := proxywasm.CallForeignFunction("get_log_level", nil)
	if err == nil && len(value) == 4 {
		level := binary.LittleEndian.Uint32(value)
		seen = strconv.FormatUint(uint64(level), 10)
		// Gate as Higress plugins do: only format and emit what the gateway would print.
		if level <= levelDebug {
			proxywasm.LogDebugf("debuglog: debug line for %s", path)
		}
		if level <= levelTrace {
			proxywasm.LogTracef("debuglog: trace line for %s", path)
		}
	}
	proxywasm.AddHttpRequestHeader("x-debuglog-level", seen)
	return types.ActionContinue
}
