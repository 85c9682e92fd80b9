// truthful: misbehaves on purpose, one way per configured mode, so hlocal's reports can be checked
// against what really happened (issue 13's "tell the truth" items).
//
//	replace_all  removes every request header the client sent (dropping x-hlocal-request-id)
//	bad_replace  calls ReplaceHttpResponseHeaders during the request phase: the host answers BadArgument
//	hang         calls a cluster that does not exist, logs the failure, and never resumes the request
//	complain_at_start (global): logs a critical line while configuring, like a plugin falling back to deny-all
package main

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
	"net/http"
	"strings"
)

func main() {}

func init() {
	wrapper.SetCtx("truthful", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct {
	mode string
}

func parseConfig(json gjson.Result, c *config) error {
	c.mode = json.Get("mode").String()
	if json.Get("complain_at_start").Bool() {
		proxywasm.LogCritical("truthful: configuration rejected, denying every request")
	}
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	proxywasm.LogInfof("truthful: %s on %s", c.mode, path)
	switch c.mode {
	case "replace_all":
		// Every header the client sent goes (pseudo-headers and Envoy's own stay so the request is still
		// routed), then one is added.
		headers, _ := proxywasm.GetHttpRequestHeaders()
		for _, h := range headers {
			if !strings.HasPrefix(h[0], ":") && !envoyAdded(h[0]) {
				if err := proxywasm.RemoveHttpRequestHeader(h[0]); err != nil {
					proxywasm.LogErrorf("truthful: remove %s failed: %v", h[0], err)
				}
			}
		}
		proxywasm.AddHttpRequestHeader("x-replaced", "all")
	case "bad_replace":
		if err := proxywasm.ReplaceHttpResponseHeaders([][2]string{{"x-early", "1"}}); err != nil {
			proxywasm.LogErrorf("truthful: replace response headers failed: %v", err)
		}
	case "hang":
		client := wrapper.NewClusterClient(wrapper.FQDNCluster{FQDN: "nowhere.internal", Port: 80})
		err := client.Get("/check", nil, func(int, http.Header, []byte) {
			proxywasm.ResumeHttpRequest()
		}, 500)
		if err != nil {
			proxywasm.LogErrorf("truthful: failed to call nowhere cluster: %v", err)
		}
		return types.ActionPause // never resumed when the call failed: the request hangs
	}
	return types.ActionContinue
}

func envoyAdded(name string) bool {
	return strings.HasPrefix(name, "x-forwarded-") || strings.HasPrefix(name, "x-envoy-") || name == "x-request-id"
}
