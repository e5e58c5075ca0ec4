package demo

import (
	"math/rand/v2"
	"strings"
)

// surnames are common Chinese surnames, commonest first.
var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔常乔牛")

// givenChars are characters common in given names. Names are random
// combinations of a surname and one or two of these.
var givenChars = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文德海林鹏辉宇浩凯欣雪梅琳晨阳婷慧佳子思雨博宁亮斌飞波春兵荣新立成金保卫东振庆云凤秋琴翠喜占朝")

// avoidNames are names of real people in the public material the demo was
// modelled on; a random draw could produce them, so they are skipped.
var avoidNames = map[string]bool{"张晓龙": true, "赵志强": true}

// personName draws a synthetic name: a surname and a one- or two-character
// given name (two in about three of four draws, as in recent generations).
func personName(r *rand.Rand) string {
	for {
		var b strings.Builder
		b.WriteRune(surnames[r.IntN(len(surnames))])
		b.WriteRune(givenChars[r.IntN(len(givenChars))])
		if r.IntN(4) != 0 {
			b.WriteRune(givenChars[r.IntN(len(givenChars))])
		}
		if name := b.String(); !avoidNames[name] {
			return name
		}
	}
}

// villagePatterns make village names from a surname, as Henan villages are
// often named after the clan that founded them (王庄, 李营, 大张).
var villagePatterns = []string{
	"%s庄", "%s营", "%s寨", "%s楼", "%s岗", "%s湾", "%s集", "%s桥", "%s店", "%s屯", "%s堂", "%s坡",
	"大%s", "小%s", "前%s", "后%s", "东%s", "西%s", "南%s", "北%s",
}

// villageSurnames name villages; a shorter list than surnames, so the same
// clan name recurs across a county as it does in life.
var villageSurnames = []rune("王李张刘陈杨赵黄周吴徐孙胡朱高林郭马宋郑韩冯于董曹袁许彭吕苏蒋贾丁魏薛杜夏田任姜范石姚孟秦史侯")

// communityWords name urban communities (社区).
var communityWords = []string{
	"春秋", "建设", "文化", "光明", "幸福", "和平", "东风", "八一", "健康", "新华",
	"育才", "兴业", "学院", "铁路", "古槐", "桃园", "丽景", "瑞祥", "锦华", "花园",
	"阳光", "长青", "向阳", "团结", "胜利", "民主", "颍河", "清潩", "紫云", "钧瓷",
	"文峰", "迎宾", "永兴", "魏武", "半截河", "天宝", "毓秀", "荷花", "龙泉", "星光",
}

// phonePrefixes are mobile number prefixes of Chinese carriers.
var phonePrefixes = []string{
	"130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
	"153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178",
	"180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "195", "198", "199",
}
