// inspectme: a wasm-go plugin whose every effect hlocal's inspector must tie to the request that
// caused it: it logs through wasm-go's logger (which stamps the request id), calls a service at
// /check<path>, copies the answer's status into a request header, writes ai_log and marks the response.
package main

import (
	"net/http"
	"strconv"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/log"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("inspectme", wrapper.ParseConfig(parseConfig),
		wrapper.ProcessRequestHeaders(onRequestHeaders), wrapper.ProcessResponseHeaders(onResponseHeaders))
}

type config struct {
	client wrapper.HttpClient
}

func parseConfig(json gjson.Result, c *config) error {
	c.client = wrapper.NewClusterClient(wrapper.FQDNCluster{
		FQDN: json.Get("host").String(), Port: json.Get("port").Int()})
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	log.Infof("inspectme: saw %s", path)
	ctx.SetUserAttribute("inspected_path", path)
	_ = ctx.WriteUserAttributeToLogWithKey(wrapper.AILogKey)
	err := c.client.Get("/check"+path, nil, func(status int, _ http.Header, _ []byte) {
		log.Infof("inspectme: service said %d for %s", status, path)
		proxywasm.AddHttpRequestHeader("x-auth-status", strconv.Itoa(status))
		proxywasm.ResumeHttpRequest()
	}, 2000)
	if err != nil {
		log.Errorf("inspectme: failed to call the service for %s: %v", path, err)
		return types.ActionContinue
	}
	return types.ActionPause
}

func onResponseHeaders(ctx wrapper.HttpContext, c config) types.Action {
	proxywasm.AddHttpResponseHeader("x-inspected", "yes")
	return types.ActionContinue
}
