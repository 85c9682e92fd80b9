// redisecho: runs the Redis command of a request's `x-redis-command` header (a JSON array of strings)
// through wasm-go's NewRedisClusterClient and answers 200 with the reply as the plugin's callback saw
// it, as JSON: {"type": "BulkString", "null": false, "value": "..."} (arrays nest their items).
//
// Config: {"redis": {"host": H, "port": P, "timeout": MS}}. Requests without the header pass.
package main

import (
	"encoding/json"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
	"github.com/tidwall/resp"
)

func main() {}

func init() {
	wrapper.SetCtx("redisecho", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct {
	client wrapper.RedisClient
}

func parseConfig(json gjson.Result, c *config) error {
	redis := json.Get("redis")
	c.client = wrapper.NewRedisClusterClient(wrapper.FQDNCluster{FQDN: redis.Get("host").String(), Port: redis.Get("port").Int()})
	timeout := redis.Get("timeout").Int()
	if timeout == 0 {
		timeout = 1000
	}
	return c.client.Init("", "", timeout)
}

// describe is the reply as the plugin sees it through tidwall/resp's accessors.
func describe(v resp.Value) map[string]interface{} {
	d := map[string]interface{}{"type": v.Type().String(), "null": v.IsNull()}
	switch v.Type() {
	case resp.Integer:
		d["value"] = v.Integer()
	case resp.Error:
		d["value"] = v.Error().Error()
	case resp.Array:
		if !v.IsNull() {
			items := []interface{}{}
			for _, item := range v.Array() {
				items = append(items, describe(item))
			}
			d["value"] = items
		}
	default:
		d["value"] = v.String()
	}
	return d
}

func answer(status uint32, body []byte) {
	proxywasm.SendHttpResponse(status, [][2]string{{"content-type", "application/json"}}, body, -1)
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	raw, _ := proxywasm.GetHttpRequestHeader("x-redis-command")
	if raw == "" {
		return types.ActionContinue
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil || len(args) == 0 {
		answer(400, []byte(`{"error": "x-redis-command must be a JSON array of strings"}`))
		return types.ActionContinue
	}
	command := make([]interface{}, len(args))
	for i, arg := range args {
		command[i] = arg
	}
	err := c.client.Command(command, func(reply resp.Value) {
		body, _ := json.Marshal(describe(reply))
		answer(200, body)
	})
	if err != nil {
		body, _ := json.Marshal(map[string]string{"error": "redis call failed: " + err.Error()})
		answer(500, body)
		return types.ActionContinue
	}
	return types.HeaderStopAllIterationAndWatermark
}
