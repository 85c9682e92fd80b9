// hello: the smallest wasm-go SDK plugin; adds `x-hello: <config.greeting>` to every request.
package main

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("hello", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct{ greeting string }

func parseConfig(json gjson.Result, c *config) error {
	c.greeting = json.Get("greeting").String()
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	proxywasm.AddHttpRequestHeader("x-hello", c.greeting)
	return types.ActionContinue
}
