// crashy: fails where its config says, to test how hlocal reports crashes.
// panic_at: "start" panics while parsing its config; "request" panics in the request-header callback
// (wasm-go recovers it and logs the stack); "trap" overflows the stack there for paths starting with
// /trap, which the Wasm engine stops with a trap no recover() catches. Other requests pass untouched.
package main

import (
	"strings"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("crashy", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct {
	panicAt string
}

func parseConfig(json gjson.Result, c *config) error {
	c.panicAt = json.Get("panic_at").String()
	if c.panicAt == "start" {
		panic("boom at start")
	}
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	switch c.panicAt {
	case "request":
		explode("boom in request")
	case "trap":
		if path, _ := proxywasm.GetHttpRequestHeader(":path"); strings.HasPrefix(path, "/trap") {
			recurse(1)
		}
	}
	return types.ActionContinue
}

func explode(message string) {
	panic(message)
}

// recurse never returns: the goroutine stack overflows, which Go reports as a fatal error and exits.
func recurse(depth int) int {
	var pad [256]byte
	pad[depth%256] = byte(depth)
	return recurse(depth+1) + int(pad[0])
}
