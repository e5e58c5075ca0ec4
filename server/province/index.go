package province

import (
	"bytes"
	"fmt"
	"html/template"
)

// IndexPage is the page at the province's / : the cities, each linking to
// its console, for a lead or a center who does not know which address is
// theirs. It is served by nginx itself, so it shows while a city is down.
func IndexPage(cities []City, title string) ([]byte, error) {
	if title == "" {
		title = DefaultTitle
	}
	if len(cities) == 0 {
		return nil, fmt.Errorf("index page: no city")
	}
	var b bytes.Buffer
	if err := indexTemplate.Execute(&b, map[string]any{"Title": title, "Cities": cities}); err != nil {
		return nil, fmt.Errorf("index page: %w", err)
	}
	return b.Bytes(), nil
}

var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
ul { list-style: none; padding: 0; }
li { margin: 0.6rem 0; font-size: 1.2rem; }
a { color: #0b57d0; }
.code { color: #666; font-size: 0.9rem; margin-left: 0.5rem; }
.hint { color: #555; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>请选择您所在的城市，进入该市的工作台登录。</p>
<ul>
{{- range .Cities}}
<li><a href="/{{.Code}}/console/">{{.Name}}</a><span class="code">{{.Code}}</span></li>
{{- end}}
</ul>
<p class="hint">各市数据相互独立：账号只能登录本市的工作台。手机应用的服务器地址是本站地址加城市代码，例如 /{{with index .Cities 0}}{{.Code}}{{end}}。</p>
</body>
</html>
`))
